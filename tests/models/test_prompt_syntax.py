"""A1111's prompt grammar: emphasis, nesting, escapes, unbalanced brackets, BREAK and LoRA tags."""

from __future__ import annotations

import pytest

from desktop_app.core.prompt_syntax import ExtraNetwork, Fragment, format_tag, parse_prompt

E = 1.1


def weights(text: str) -> list[list[tuple[str, float]]]:
    return [[(f.text, round(f.weight, 6)) for f in segment] for segment in parse_prompt(text).segments]


@pytest.mark.parametrize("text, expected", [
    ("a cat", [[("a cat", 1.0)]]),
    ("a (cat)", [[("a ", 1.0), ("cat", E)]]),
    ("((cat))", [[("cat", round(E * E, 6))]]),
    ("(((cat)))", [[("cat", round(E ** 3, 6))]]),
    ("[cat]", [[("cat", round(1 / E, 6))]]),
    ("[[cat]]", [[("cat", round(1 / E / E, 6))]]),
    ("([cat])", [[("cat", 1.0)]]),
    ("(cat:1.3)", [[("cat", 1.3)]]),
    ("(cat: 1.3 )", [[("cat", 1.3)]]),
    ("(cat:.5)", [[("cat", 0.5)]]),
    ("(cat:-1)", [[("cat", -1.0)]]),
    ("(cat:0)", [[("cat", 0.0)]]),
    ("((cat):2)", [[("cat", 2.2)]]),
    ("(a [b] c:2)", [[("a ", 2.0), ("b", round(2 / E, 6)), (" c", 2.0)]]),
    ("(a (b:1.5) c)", [[("a ", E), ("b", 1.65), (" c", E)]]),
    ("a (b) (c) d", [[("a ", 1.0), ("b", E), (" ", 1.0), ("c", E), (" d", 1.0)]]),
])
def test_emphasis_and_nesting(text, expected):
    assert weights(text) == expected


@pytest.mark.parametrize("text, expected", [
    (r"\(cat\)", [[("(cat)", 1.0)]]),
    (r"\[cat\]", [[("[cat]", 1.0)]]),
    (r"(a \(b\))", [[("a (b)", E)]]),
    (r"a \\ b", [[("a \\ b", 1.0)]]),
    (r"\n stays", [[("\\n stays", 1.0)]]),
    (r"smile \(emoticon\) (happy:1.2)", [[("smile (emoticon) ", 1.0), ("happy", 1.2)]]),
])
def test_escapes(text, expected):
    assert weights(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("(cat", [[("cat", E)]]),  # an open group applies to the end
    ("a (b (c", [[("a ", 1.0), ("b ", E), ("c", round(E * E, 6))]]),
    ("[cat", [[("cat", round(1 / E, 6))]]),
    ("cat)", [[("cat)", 1.0)]]),  # a bracket that closes nothing is text
    ("cat]", [[("cat]", 1.0)]]),
    ("a:1.2) b", [[("a:1.2) b", 1.0)]]),  # a weight needs an open round group
    ("[cat:1.5]", [[("cat:1.5", round(1 / E, 6))]]),  # square brackets take no number
    ("(cat:x)", [[("cat:x", E)]]),
    ("(cat:1.2", [[("cat:1.2", E)]]),
    ("(a]b)", [[("a]b", E)]]),
    ("time: 5pm", [[("time: 5pm", 1.0)]]),
])
def test_unbalanced_and_odd_brackets(text, expected):
    assert weights(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("a BREAK b", [[("a", 1.0)], [("b", 1.0)]]),
    ("a\nBREAK\nb", [[("a", 1.0)], [("b", 1.0)]]),
    ("BREAK a", [[], [("a", 1.0)]]),
    ("a BREAK", [[("a", 1.0)], []]),
    ("a BREAK BREAK b", [[("a", 1.0)], [], [("b", 1.0)]]),
    ("a break b", [[("a break b", 1.0)]]),
    ("BREAKFAST", [[("BREAKFAST", 1.0)]]),
    ("(a BREAK b:1.2)", [[("a", 1.2)], [("b", 1.2)]]),
])
def test_break(text, expected):
    assert weights(text) == expected


def test_lora_tags_are_taken_out_with_their_weights():
    parsed = parse_prompt("(red:1.3) circle <lora:x:0.7>, <lora:Detail Tweaker> <lora:two:0.8:0.5> <hypernet:h:1>")
    assert parsed.segments == ((Fragment("red", 1.3), Fragment(" circle ,   ", 1.0)),)  # spaces stay: CLIP drops them
    assert [(n.kind, n.name, n.weight, n.unet_weight) for n in parsed.networks] == [
        ("lora", "x", 0.7, 0.7), ("lora", "Detail Tweaker", 1.0, 1.0), ("lora", "two", 0.8, 0.5), ("hypernet", "h", 1.0, 1.0)]
    assert [n.name for n in parsed.loras] == ["x", "Detail Tweaker", "two"]
    assert parsed.networks[0].tag == "<lora:x:0.7>"


def test_bad_tags_are_reported_and_removed():
    parsed = parse_prompt("a <lora:x:strong> b")
    assert parsed.networks == () and parsed.plain_text == "a  b"
    assert parsed.problems == ("<lora:x:strong>: a tag is <lora:name> or <lora:name:weight>",)


def test_plain_prompts_and_tag_formatting():
    assert parse_prompt("a photo of a cat, 4k: high detail").is_plain
    assert not parse_prompt("a (cat)").is_plain and not parse_prompt("a BREAK b").is_plain
    assert parse_prompt("").segments == ((),)
    assert format_tag("lora", "x", 0.7) == "<lora:x:0.7>"
    assert format_tag("lora", "x", 0.7, 0.5) == "<lora:x:0.7:0.5>"
    assert ExtraNetwork("lora", "y", 1.0, 1.0).format() == "<lora:y:1>"
