"""`corral.lazyssl`: asyncio imported without `ssl`, and its TLS still works."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

# a TLS server and client on asyncio imported by corral.lazyssl, before anything else
# imports ssl; then what asyncio's modules hold
_TLS = textwrap.dedent(
    """
    import json, sys
    from corral.lazyssl import asyncio, DeferredSSL
    from corral import lazyssl
    before = {name: type(sys.modules[name].ssl).__name__ for name in lazyssl.USERS}
    imported_before = "ssl" in sys.modules

    async def main(cert, key):
        import ssl
        server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        server_ctx.load_cert_chain(cert, key)
        client_ctx = ssl.create_default_context(cafile=cert)

        async def echo(reader, writer):
            writer.write(await reader.readline())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo, "127.0.0.1", 0, ssl=server_ctx)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client_ctx, server_hostname="localhost"
        )
        writer.write(b"over tls\\n")
        line = await reader.readline()
        writer.close()
        server.close()
        await server.wait_closed()
        return line.decode()

    line = asyncio.run(main(sys.argv[1], sys.argv[2]))
    after = {name: type(sys.modules[name].ssl).__name__ for name in lazyssl.USERS}
    sslproto = sys.modules["asyncio.sslproto"]
    print(json.dumps({
        "before": before, "imported_before": imported_before, "line": line, "after": after,
        "again": [e.__name__ for e in sslproto.SSLAgainErrors],
    }))
    """
)


def test_asyncio_holds_a_stand_in_and_tls_works_through_it(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", _TLS, str(cert), str(key)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert not found["imported_before"]
    assert set(found["before"].values()) == {"DeferredSSL"}
    assert found["line"] == "over tls\n"
    assert set(found["after"].values()) == {"module"}  # the real ssl, in its place
    assert found["again"] == ["SSLWantReadError", "SSLSyscallError"]


def test_asyncio_already_imported_is_left_as_it_is() -> None:
    code = (
        "import asyncio, ssl, sys\n"
        "import corral.lazyssl\n"
        "print(sys.modules['asyncio.sslproto'].ssl is ssl)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "True"


def test_exec_imports_no_ssl(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom corral.cli.main import main\n"
        "try:\n    main(['exec', '-q', '--', 'true'])\nexcept SystemExit:\n    pass\n"
        "print('_ssl' in sys.modules, 'ssl' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.splitlines()[-1] == "False False"
