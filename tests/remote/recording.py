"""The recorded ComfyUI 0.3.64 exchanges (``shared/comfyui/transcripts``) as templates for the fake.

Every message the fake sends is a recorded one with the prompt id, node, step or file name put in;
binary preview frames are the recorded bytes (a type-4 frame's JSON header gets the new prompt id).
"""

from __future__ import annotations

import base64
import copy
import json
import struct
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
TRANSCRIPTS = REPO.parent / "shared" / "comfyui" / "transcripts"


def load(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (TRANSCRIPTS / name).read_text(encoding="utf-8").splitlines() if line]


def ws_texts(lines: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [line["msg"] for line in lines if line["kind"] == "ws_text" and line["msg"]["type"] == kind]


def ws_binaries(lines: list[dict[str, Any]]) -> list[bytes]:
    return [base64.b64decode(line["b64"]) for line in lines if line["kind"] == "ws_binary"]


def http(lines: list[dict[str, Any]], method: str, path_start: str) -> dict[str, Any]:
    return next(line for line in lines if line["kind"] == "http" and line["method"] == method
                and line["path"].startswith(path_start))


def replace_prompt_id(value: Any, old: str, new: str) -> Any:
    return json.loads(json.dumps(value).replace(old, new))


@dataclass(frozen=True)
class Recording:
    legacy: list[dict[str, Any]]
    metadata: list[dict[str, Any]]
    interrupted: list[dict[str, Any]]
    error: list[dict[str, Any]]
    validation: list[dict[str, Any]]

    @staticmethod
    def prompt_id_of(lines: list[dict[str, Any]]) -> str:
        return http(lines, "POST", "/prompt")["response"]["prompt_id"]

    def message(self, lines: list[dict[str, Any]], kind: str, prompt_id: str, index: int = 0) -> dict[str, Any]:
        return replace_prompt_id(ws_texts(lines, kind)[index], self.prompt_id_of(lines), prompt_id)

    def greeting(self, sid: str) -> dict[str, Any]:
        message = copy.deepcopy(ws_texts(self.legacy, "status")[0])
        message["data"]["sid"] = sid
        return message

    def feature_flags(self) -> dict[str, Any]:
        return copy.deepcopy(ws_texts(self.metadata, "feature_flags")[0])

    def status(self, remaining: int) -> dict[str, Any]:
        message = copy.deepcopy(ws_texts(self.legacy, "status")[1])
        message["data"]["status"]["exec_info"]["queue_remaining"] = remaining
        return message

    def legacy_frames(self) -> list[bytes]:
        return ws_binaries(self.legacy)

    def metadata_frames(self, prompt_id: str) -> list[bytes]:
        frames = []
        for frame in ws_binaries(self.metadata):
            (size,) = struct.unpack(">I", frame[4:8])
            header = json.loads(frame[8 : 8 + size])
            header["prompt_id"] = prompt_id
            encoded = json.dumps(header).encode()
            frames.append(frame[:4] + struct.pack(">I", len(encoded)) + encoded + frame[8 + size :])
        return frames

    def validation_answer(self, input_name: str, received: str, choices: list[str], node_id: str,
                          class_type: str) -> dict[str, Any]:
        answer = copy.deepcopy(http(self.validation, "POST", "/prompt")["response"])
        (recorded,) = answer["node_errors"].values()
        error = recorded["errors"][0]
        error["details"] = f"{input_name}: '{received}' not in {choices!r}"
        error["extra_info"]["input_name"] = input_name
        error["extra_info"]["input_config"][0] = choices
        error["extra_info"]["received_value"] = received
        recorded["class_type"] = class_type
        answer["node_errors"] = {node_id: recorded}
        return answer

    def history_entry(self, lines: list[dict[str, Any]], prompt_id: str) -> dict[str, Any]:
        entry = http(lines, "GET", "/history/")["response"]
        (recorded,) = entry.values()
        return replace_prompt_id(recorded, self.prompt_id_of(lines), prompt_id)


@cache
def recording() -> Recording:
    return Recording(load("job-64-legacy-previews.jsonl"), load("job-64-preview-metadata.jsonl"),
                     load("job-256-interrupted.jsonl"), load("job-execution-error-tiny-sd.jsonl"),
                     load("job-validation-error.jsonl"))
