"""`corral provider serve`: prints how to use it, serves, and stops cleanly on a signal."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request

import pytest
from click.testing import CliRunner

from corral.cli.provider import provider_command


def test_bad_scenario_option_is_a_usage_error() -> None:
    result = CliRunner().invoke(provider_command, ["serve", "--scenario", "x=dance"])
    assert result.exit_code == 2
    assert "--scenario" in result.output


@pytest.mark.parametrize(("sig", "codes"), [(signal.SIGINT, (0, 130)), (signal.SIGTERM, (0,))])
def test_serve_until_signalled(sig: signal.Signals, codes: tuple[int, ...]) -> None:
    command = [
        sys.executable,
        "-m",
        "corral",
        "provider",
        "serve",
        "--port",
        "0",
        "--scenario",
        "e=error:529",
    ]
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("corral provider: serving on http://127.0.0.1:")
        url = first.split()[-1]
        printed = [first]
        while "copilot -p" not in printed[-1]:  # the last instruction line
            printed.append(process.stdout.readline())
        request = urllib.request.Request(
            f"{url}/s/e/v1/messages", data=json.dumps({"model": "m"}).encode(), method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=5)
        assert caught.value.code == 529
        assert json.loads(caught.value.read())["error"]["type"] == "overloaded_error"
        process.send_signal(sig)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode in codes
    assert "Traceback" not in err
    assert "stopped after 1 requests" in err
    whole = "".join(printed) + out
    for variable in (
        "ANTHROPIC_BASE_URL",
        "GOOGLE_GEMINI_BASE_URL",
        "model_provider",
        "OPENAI_BASE_URL",
        "XDG_CONFIG_HOME",
        "COPILOT_PROVIDER_BASE_URL",
        "/s/e",
    ):
        assert variable in whole
