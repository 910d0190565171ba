"""The pieces on their own: frames, the sampler map, graphs, reading the recorded answers, the
journal on disk, tokens in a keyring, and the package's import hygiene."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import pytest

from desktop_app.backend.remote.comfyui.client import normalize_url
from desktop_app.backend.remote.comfyui.frames import FrameError, decode_preview, parse_frame
from desktop_app.backend.remote.comfyui.graph import build_graph, expected_file
from desktop_app.backend.remote.comfyui.journal import Journal
from desktop_app.backend.remote.comfyui.limits import Limits
from desktop_app.backend.remote.comfyui.results import (
    execution_error_message,
    outcome_from_history,
    validation_message,
)
from desktop_app.backend.remote.comfyui.samplers import COMFY_SAMPLERS, NOT_ON_COMFYUI
from desktop_app.core.schedulers import SCHEDULERS

from .conftest import recipe
from .fake_comfy import SAMPLERS
from .fake_comfy import SCHEDULERS as COMFY_SCHEDULES
from .recording import http, recording, ws_texts


def test_recorded_frames_parse_as_their_types():
    rec = recording()
    legacy = parse_frame(rec.legacy_frames()[0])
    assert legacy.mime == "image/jpeg" and legacy.prompt_id is None
    meta = parse_frame(rec.metadata_frames("p-1")[0])
    assert meta.mime == "image/jpeg" and meta.prompt_id == "p-1" and meta.node_id == "5"
    assert decode_preview(meta).shape[2] == 3 and decode_preview(legacy).dtype.name == "uint8"
    assert parse_frame(struct.pack(">II", 3, 1) + b"5text") is None  # progress text: not a preview


@pytest.mark.parametrize("frame, words", [
    (b"\x00\x00\x00\x01", "too short"),
    (struct.pack(">II", 1, 7) + b"x", r"neither 1 \(JPEG\) nor 2 \(PNG\)"),
    (struct.pack(">II", 4, 10_000) + b"{}", "over the limit or longer"),
    (struct.pack(">II", 4, 2_000_000) + b"{}" * 1_000_001, "over the limit or longer"),
    (struct.pack(">II", 4, 3) + b"{x}", "not JSON"),
    (struct.pack(">II", 4, 2) + b"[]", "not a JSON object"),
    (struct.pack(">II", 4, 26) + b'{"image_type": "text/html"}'[:26], "not JSON"),
])
def test_broken_frames_are_refused_with_a_reason(frame, words):
    with pytest.raises(FrameError, match=words):
        parse_frame(frame, Limits())


def test_a_frame_over_the_message_limit_is_refused():
    with pytest.raises(FrameError, match="over the 100-byte limit"):
        parse_frame(struct.pack(">II", 1, 1) + b"\xff" * 200, Limits(ws_message_bytes=100))


def test_every_scheduler_is_mapped_or_refused_with_a_reason():
    assert set(COMFY_SAMPLERS) | set(NOT_ON_COMFYUI) == set(SCHEDULERS)
    for name, choice in COMFY_SAMPLERS.items():  # and the fake lists what the recorded server offers
        assert choice.sampler_name in SAMPLERS and choice.scheduler in COMFY_SCHEDULES, name


def test_the_graph_is_the_recorded_shape_and_names_its_file_by_content():
    graph = build_graph(recipe(seed=512, model_id="mini-sd15-taesd.safetensors"))
    recorded = http(recording().metadata, "POST", "/prompt")["request"]["prompt"]
    assert {k: v["class_type"] for k, v in graph.items()} == {k: v["class_type"] for k, v in recorded.items()}
    for node in ("1", "2", "3", "4", "5", "6"):
        assert graph[node] == recorded[node], node
    assert build_graph(recipe(seed=512, model_id="mini-sd15-taesd.safetensors")) == graph
    other = build_graph(recipe(seed=513, model_id="mini-sd15-taesd.safetensors"))
    assert other["7"]["inputs"]["filename_prefix"] != graph["7"]["inputs"]["filename_prefix"]
    subfolder, name = expected_file(graph)
    assert subfolder == "diffuse-studio" and name.endswith("_00001_.png")
    with pytest.raises(ValueError, match="resolved"):
        build_graph(recipe(seed=None))


def test_the_recorded_histories_read_as_their_outcomes():
    rec = recording()
    server = "ComfyUI at box:8188"
    success = outcome_from_history(rec.history_entry(rec.legacy, "a"), server)
    assert success.kind == "success" and success.images[0].filename == "client_test_00039_.png"
    assert success.cached is False
    assert outcome_from_history(rec.history_entry(rec.interrupted, "b"), server).kind == "interrupted"
    error = outcome_from_history(rec.history_entry(rec.error, "c"), server)
    assert error.kind == "error"
    assert error.message == ("ComfyUI at box:8188: DiffusersLoader (node 1) failed: ERROR: Could not detect model "
                             "type of: <comfyui-work>/diffusion_pytorch_model.safetensors")
    data = ws_texts(rec.error, "execution_error")[0]["data"]
    assert execution_error_message(data, server) == error.message


def test_the_recorded_validation_error_reads_as_one_line():
    answer = http(recording().validation, "POST", "/prompt")["response"]
    message = validation_message(answer, "ComfyUI at box:8188")
    assert message.startswith("ComfyUI at box:8188 refused the job: CheckpointLoaderSimple (node 1): "
                              "Value not in list: ckpt_name: 'does-not-exist.safetensors' not in")
    assert len(message) <= Limits().message_chars


def test_the_journal_keeps_states_across_a_reopen(home):
    path = home / "data" / "journal.sqlite3"
    journal = Journal(path)
    journal.add_job("j1", {"prompt": {"text": "x"}}, {"preview": "off"}, "", [("p1", 0, {"1": {}}), ("p2", 1, {})])
    journal.set_part("p1", "submitting", "http://a:8188")
    journal.set_part("p1", "queued")
    journal.close()
    again = Journal(path)
    (job,) = again.jobs("active")
    assert job.recipe == {"prompt": {"text": "x"}} and job.options == {"preview": "off"}
    assert [(p.prompt_id, p.state, p.server) for p in job.parts] == [("p1", "queued", "http://a:8188"),
                                                                     ("p2", "planned", "")]
    with pytest.raises(ValueError):
        again.set_part("p1", "exploded")
    again.set_job("j1", "lost", "gone")
    assert again.jobs("active") == [] and again.job("j1").message == "gone"
    again.forget("j1")
    assert again.job("j1") is None
    again.close()


def test_addresses_are_normalized():
    assert normalize_url("gpu-box") == "http://gpu-box:8188"
    assert normalize_url("https://comfy.example.org/proxy/") == "https://comfy.example.org/proxy"
    assert normalize_url("http://10.0.0.2:9000") == "http://10.0.0.2:9000"
    with pytest.raises(ValueError, match="http:// or https://"):
        normalize_url("ftp://box")


def test_tokens_go_to_the_keyring_or_say_why_not():
    from keyring.backends import fail

    from desktop_app.backend.remote.comfyui import tokens
    from tests.keyrings import MemoryKeyring, using

    with using(fail.Keyring()):
        with pytest.raises(tokens.TokenStoreUnavailable, match="no keyring service"):
            tokens.save_token("gpu-box", "t0k")
        assert tokens.load_token("gpu-box") is None
    with using(MemoryKeyring()) as memory:
        tokens.save_token("gpu-box", "t0k")
        assert memory.stored == {(tokens.SERVICE, "http://gpu-box:8188"): "t0k"}
        assert tokens.load_token("http://gpu-box:8188") == "t0k"
        tokens.delete_token("gpu-box")
        assert tokens.load_token("gpu-box") is None


def test_the_package_imports_without_torch_qt_or_the_local_backend():
    code = ("import sys, desktop_app.backend.remote.comfyui; "
            "print(json.dumps(sorted(m for m in ('torch', 'diffusers', 'PySide6', 'desktop_app.backend.local') "
            "if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == []
