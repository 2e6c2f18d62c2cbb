"""netshrink.yamlfile: safe YAML with 1.2 floats, no duplicate keys, bounded size, depth and
aliases, and one clear error for each bad file."""

import itertools

import pytest

from netshrink.errors import NetshrinkError
from netshrink.yamlfile import MAX_ALIASES, MAX_BYTES, MAX_DEPTH, parse_yaml, read_yaml


def test_exponent_floats_are_numbers_and_other_scalars_keep_their_type():
    doc = parse_yaml("a: 1e-3\nb: 2E+4\nc: .5e1\nd: 3\ne: '1e-3'\nf: yes_no\ng: 1.5\n")
    assert doc == {"a": 1e-3, "b": 2e4, "c": 5.0, "d": 3, "e": "1e-3", "f": "yes_no", "g": 1.5}
    assert isinstance(doc["a"], float) and isinstance(doc["d"], int)


def test_no_python_objects():
    with pytest.raises(NetshrinkError, match=r"^src: line 1: could not determine a constructor"):
        parse_yaml("a: !!python/object/apply:os.system ['true']\n", "src")
    with pytest.raises(NetshrinkError, match=r"^src is not valid YAML: could not determine"):
        parse_yaml("!!python/object/apply:os.system ['true']\n", "src")


def test_a_duplicate_key_is_refused_with_its_line():
    with pytest.raises(NetshrinkError, match=r"^grid: line 3: key 'a' appears twice$"):
        parse_yaml("a: 1\nb: 2\na: 3\n", "grid")
    with pytest.raises(NetshrinkError, match="key 'x' appears twice"):
        parse_yaml("outer:\n  x: 1\n  x: 2\n")


def test_the_same_key_in_different_mappings_is_fine():
    assert parse_yaml("- a: 1\n- a: 2\n") == [{"a": 1}, {"a": 2}]


def test_an_unhashable_key_is_one_netshrink_error():
    with pytest.raises(NetshrinkError, match="line 1"):
        parse_yaml("? [1, 2]\n: x\n")


def test_depth_bound():
    ok = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    parse_yaml(ok)
    with pytest.raises(NetshrinkError, match=f"r.yaml: nested deeper than {MAX_DEPTH} levels"):
        parse_yaml("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "r.yaml")


def test_alias_bound_stops_a_billion_laughs():
    few = "a: &a 1\n" + "".join(f"k{i}: *a\n" for i in range(MAX_ALIASES))
    assert parse_yaml(few)["k0"] == 1
    levels = "abcdefghijklm"
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in itertools.pairwise(levels))
    with pytest.raises(NetshrinkError, match=f"more than {MAX_ALIASES} YAML aliases"):
        parse_yaml(bomb)


def test_size_bound():
    with pytest.raises(NetshrinkError, match="big: larger than 1,048,576 bytes"):
        parse_yaml("#" * (MAX_BYTES + 1), "big")


def test_invalid_yaml_names_the_source():
    with pytest.raises(NetshrinkError, match=r"^spec\.yaml is not valid YAML"):
        parse_yaml("a: [1, 2\n", "spec.yaml")


def test_read_yaml_reads_a_file(tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text("lr: 3e-4\n")
    assert read_yaml(path) == {"lr": 3e-4}


def test_read_yaml_errors_name_the_file(tmp_path):
    with pytest.raises(NetshrinkError, match=r"cannot read .*missing\.yaml"):
        read_yaml(tmp_path / "missing.yaml")
    binary = tmp_path / "b.yaml"
    binary.write_bytes(b"a: 1\n\xff")
    with pytest.raises(NetshrinkError, match=r"b\.yaml: not UTF-8 text \(byte 5\)"):
        read_yaml(binary)
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_BYTES + 1))
    with pytest.raises(NetshrinkError, match=r"big\.yaml: larger than"):
        read_yaml(big)
    twice = tmp_path / "twice.yaml"
    twice.write_text("a: 1\na: 2\n")
    with pytest.raises(NetshrinkError, match=r"twice\.yaml: line 2: key 'a' appears twice"):
        read_yaml(twice)
