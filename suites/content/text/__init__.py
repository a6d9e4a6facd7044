"""Text product of the content suite: a GPT trained on the user's documents (see ``models.TextGenerator``)."""
