"""A control character in a name or a value is refused over HTTP as on the command
line (virtuned/inputs.py, checked by the API): 422, never a 500."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("body, pointer, message", [
    ({"name": "a\u0000b"}, "/name", "/name: the name 'a\\x00b': control character "
                                    "\\x00 (U+0000) is not allowed"),
    ({"params": {"queues": "4\u001b[2J"}}, "/params/queues",
     "/params/queues: the value '4\\x1b[2J': control character \\x1b (U+001B) is not "
     "allowed"),
])
def test_control_characters_are_refused_with_422(client, server, body, pointer, message):
    answer = client.post("/v1/compile", json=body)
    assert answer.status_code == 422, answer.text
    [diagnostic] = answer.json()["diagnostics"]
    assert (diagnostic["file"], diagnostic["message"]) == ("<request>", message)
    server.assert_serving()


def test_a_control_character_in_trait_text_is_refused_at_its_place(client):
    answer = client.post("/v1/compile", json={"traits": ['video "q\u0007xl"']})
    assert answer.status_code == 422, answer.text
    [diagnostic] = answer.json()["diagnostics"]
    assert (diagnostic["file"], diagnostic["line"], diagnostic["col"],
            diagnostic["message"]) == ("<trait 1>", 1, 9, "control character \\x07 "
                                       "(U+0007) in trait text is not allowed")
