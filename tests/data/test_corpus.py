import pytest

from netshrink.data import corpus
from netshrink.errors import DataError

PAGE = """\
.. _tut-intro:

*********************
An Informal Tutorial
*********************

Python is an easy to learn, powerful programming language.  It has efficient
high-level data structures and a simple but effective approach to
:term:`object-oriented programming <OOP>`.  See :func:`~os.path.join` for e.g. paths.

A literal block follows this sentence, which has enough words to count::

   >>> print("This line is code and must never become a sentence.")

.. function:: frobnicate(x)

   Return the frobnicated value of *x*, which must be an integer or a float.
   The result is always a ``str`` and never raises an exception here.

   .. code-block:: python

      Code inside a directive body is not prose at all either.

* A list item is prose when it is a whole sentence like this one.

.. This is a comment that spans
   two lines and must be dropped entirely from the corpus.

Short one.
"""


def _folder(tmp_path, pages: int = 80):
    for i in range(pages):
        sub = tmp_path / ("library" if i % 2 else "tutorial")
        sub.mkdir(exist_ok=True)
        text = PAGE + f"\nPage number {i} talks about its own topic in its own sentence.\n"
        (sub / f"page{i}.rst.txt").write_text(text)
    return tmp_path


def test_sentences_keep_prose_and_drop_code_comments_titles():
    found = list(corpus.sentences(PAGE))
    assert "Python is an easy to learn, powerful programming language." in found
    assert ("It has efficient high-level data structures and a simple but effective approach "
            "to object-oriented programming.") in found
    assert "See join for e.g. paths." not in found  # four words: too short
    assert any(s.startswith("Return the frobnicated value of x,") for s in found)
    assert "The result is always a str and never raises an exception here." in found
    assert "A list item is prose when it is a whole sentence like this one." in found
    text = " ".join(found)
    for gone in ("code", "comment", "Informal Tutorial", "Short one", ">>>", "::"):
        assert gone not in text, gone


def test_split_keeps_abbreviations_inside_a_sentence():
    parts = corpus.split_sentences("Use a tool, e.g. Sphinx, for docs. Then Build it now.")
    assert parts == ["Use a tool, e.g. Sphinx, for docs.", "Then Build it now."]


def test_load_dedups_and_holds_out_whole_documents(tmp_path):
    text = corpus.load(_folder(tmp_path))
    assert text.train and text.heldout
    assert not set(text.train) & set(text.heldout)
    assert len(set(text.train)) == len(text.train)
    # the sentences every page shares appear once, in the first page's part
    shared = "Python is an easy to learn, powerful programming language."
    assert (shared in text.train) != (shared in text.heldout)
    for i in range(80):
        sentence = f"Page number {i} talks about its own topic in its own sentence."
        relative = f"{'library' if i % 2 else 'tutorial'}/page{i}.rst.txt"
        part = text.heldout if corpus.is_heldout(relative) else text.train
        assert sentence in part


def test_missing_folder_names_the_debian_package(tmp_path):
    with pytest.raises(DataError, match=r"python3\.11-doc"):
        corpus.load(tmp_path / "nothing")
    assert not corpus.available(tmp_path / "nothing")


@pytest.mark.skipif(not corpus.available(), reason="Debian's python3.11-doc is not installed")
def test_the_installed_documentation_gives_enough_held_out_sentences():
    text = corpus.load()
    assert len(text.heldout) >= 2000 and len(text.train) >= 10 * 2000
    assert not set(text.train) & set(text.heldout)
    words = [len(s.split()) for s in text.heldout]
    assert min(words) >= corpus.MIN_WORDS and max(words) <= corpus.MAX_WORDS
