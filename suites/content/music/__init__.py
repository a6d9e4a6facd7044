"""Music product of the content suite: four-voice event GPT, MIDI/WAV export, chorale evaluation."""
