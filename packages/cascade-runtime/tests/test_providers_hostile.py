"""The providers against a hostile param or source (issue 89, items 2-4): a format string
that reaches for secrets, a few bytes that render or parse into gigabytes, a param that names
a file to send or code to run; each attack fails its task with an error naming the bound or
the rule, and ordinary use is unchanged."""

from __future__ import annotations

import contextlib
import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import cascade.runtime as cs
from cascade.runtime import BoundExceeded, FormatFieldRefused, PathRefused, TaskFailedError


def _failure(target: object, **params: object) -> BaseException:
    """The cause of the task failure running ``target`` with ``params`` ends in."""
    with pytest.raises(TaskFailedError) as failed:
        cs.run(target, params=params)
    cause = failed.value.__cause__
    assert cause is not None
    return cause


# --- item 2: format strings and templates from params ---


def test_a_format_string_from_a_param_cannot_reach_a_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOSTILE_SECRET", "s3cret")
    fmt = "{0.raise_for_status.__globals__[os].environ[HOSTILE_SECRET]}"
    target = cs.format(cs.Param("fmt"), cs.HttpResponse(200))
    error = _failure(target, fmt=fmt)
    assert isinstance(error, FormatFieldRefused)
    assert "s3cret" not in str(error)
    assert isinstance(_failure(cs.format(cs.Param("fmt"), {"k": 1}), fmt="{0[k]}"), ValueError)


def test_format_keeps_its_ordinary_meaning() -> None:
    rendered = cs.run(cs.format("{0} and {name!r:>6}, {0:.2f}", 1.5, name="x"))
    assert rendered == "1.5 and    'x', 1.50"
    assert cs.run(cs.format("{{literal}} {}", "v")) == "{literal} v"


@pytest.mark.parametrize(
    ("fmt", "values"),
    [("{0:>40000000}", (1,)), ("{0:.40000000f}", (1.0,)), ("{0:{1}}", (1, ">40000000"))],
)
def test_a_format_spec_past_the_bound_is_refused(fmt: str, values: tuple[object, ...]) -> None:
    error = _failure(cs.format(cs.Param("fmt"), *values), fmt=fmt)
    assert isinstance(error, BoundExceeded)
    assert "max_length" in str(error)
    assert "1,000,000" in str(error)


def test_what_format_renders_is_bounded_and_the_bound_is_an_option() -> None:
    big = "x" * 600_000
    assert isinstance(_failure(cs.format("{}{}", big, big)), BoundExceeded)
    assert len(cs.run(cs.format("{}{}", big, big, max_length=2_000_000))) == 1_200_000
    assert isinstance(_failure(cs.format("{0:>20}", 1, max_length=10)), BoundExceeded)


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'A' * 40000000 }}",
        "{{ 40000000 * 'A' }}",
        "{{ 'a'.center(40000000) }}",
        "{{ 'a'|center(40000000) }}",
        "{{ '%40000000s' % 1 }}",
        "{{ '%40000000s'|format(1) }}",
        "{{ '{:>40000000}'.format(1) }}",
        "{{ ('A' * 1000)|replace('A', 'A' * 1000) }}",
        "{{ 10 ** 100000000 }}",
        "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}",
    ],
)
def test_a_template_from_a_param_cannot_render_past_the_bound(template: str) -> None:
    error = _failure(cs.template(cs.Param("t")), t=template)
    assert isinstance(error, BoundExceeded), error
    assert "max_length" in str(error)


def test_a_template_within_the_bound_renders_and_the_bound_is_an_option() -> None:
    rendered = cs.run(cs.template("{{ 'ab' * 3 }} {{ x|center(5) }}!", x="y"))
    assert rendered == "ababab   y  !"
    assert len(cs.run(cs.template("{{ 'A' * 2000000 }}", max_length=3_000_000))) == 2_000_000
    assert isinstance(_failure(cs.template("{{ x }}", x="y" * 20, max_length=10)), BoundExceeded)


# --- items 3 and 4: cs.http's answers and uploads, against a real local HTTP server ---


class Hostile(BaseHTTPRequestHandler):
    """``/bomb``: 64 MiB of zeros gzipped (about 65 KB); ``/big``: 32 MiB plain;
    ``/small.gz``: a small gzipped JSON; a POST answers with what it got."""

    def do_GET(self) -> None:
        encoding = None
        if self.path == "/bomb":
            body, encoding = BOMB, "gzip"
        elif self.path == "/small.gz":
            body, encoding = gzip.compress(b'{"ok": true}'), "gzip"
        else:
            body = b"B" * (32 * 1024 * 1024)
        self.send_response(200)
        if encoding:
            self.send_header("content-encoding", encoding)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(body)  # the client may stop reading: what a bound does

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


BOMB = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A server of the test's own on a free loopback port: its base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Hostile)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_gzip_bomb_is_refused_past_the_body_bound(server: str) -> None:
    assert len(BOMB) < 100_000
    error = _failure(cs.http.get(f"{server}/bomb"))
    assert isinstance(error, BoundExceeded)
    assert "max_body" in str(error)
    assert "16,777,216" in str(error)


def test_a_large_answer_is_refused_unless_the_bound_is_raised(server: str) -> None:
    assert isinstance(_failure(cs.http.get(f"{server}/big")), BoundExceeded)
    answer = cs.run(cs.http.get(f"{server}/big", max_body=40 * 1024 * 1024))
    assert len(answer.body) == 32 * 1024 * 1024


def test_a_gzipped_answer_within_the_bound_is_decoded(server: str) -> None:
    assert cs.run(cs.http.get(f"{server}/small.gz")).json() == {"ok": True}


def test_an_answer_streams_to_a_file(server: str, tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    answer = cs.run(cs.http.get(f"{server}/big", to_file=path, max_body=None))
    assert answer.body == b""
    assert answer.body_file == str(path)
    assert path.stat().st_size == 32 * 1024 * 1024
    refused = tmp_path / "bomb.bin"
    assert isinstance(_failure(cs.http.get(f"{server}/bomb", to_file=refused)), BoundExceeded)
    assert not refused.exists()  # no part of a refused body kept


def test_a_str_in_files_is_content_never_a_path(server: str, tmp_path: Path) -> None:
    secret = tmp_path / "id_rsa"
    secret.write_text("PRIVATE KEY")
    sent = cs.http.post(server, files={"note": cs.Param("note")})
    body = cs.run(sent, params={"note": str(secret)}).body
    assert b"PRIVATE KEY" not in body
    assert str(secret).encode() in body
    from_code = cs.run(cs.http.post(server, files={"note": secret})).body  # a Path: the file
    assert b"PRIVATE KEY" in from_code


# --- item 3: YAML ---


def _aliases(levels: int) -> str:
    """A YAML document of ``levels`` nested aliases, each standing for nine of the one before:
    a few hundred bytes that stand for 9**levels values."""
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in range(1, levels + 1):
        refs = ", ".join([f"*a{level - 1}"] * 9)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "\n".join(lines) + "\n"


def test_yaml_aliases_past_the_node_bound_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yml"
    path.write_text(_aliases(9))
    assert path.stat().st_size < 600
    error = _failure(cs.load_yaml(str(path)))
    assert isinstance(error, BoundExceeded)
    assert "max_nodes" in str(error)
    small = tmp_path / "small.yml"
    small.write_text(_aliases(2))
    assert len(cs.run(cs.load_yaml(str(small)))["a2"]) == 9
    assert isinstance(_failure(cs.load_yaml(str(small), max_nodes=50)), BoundExceeded)


def test_a_yaml_file_past_the_size_bound_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yml"
    path.write_text("k: " + "v" * 2000 + "\n")
    error = _failure(cs.load_yaml(str(path), max_bytes=1000))
    assert isinstance(error, BoundExceeded)
    assert "max_bytes" in str(error)
    assert cs.run(cs.load_yaml(str(path))) == {"k": "v" * 2000}


def test_a_file_past_the_read_bound_is_refused_reading_no_more_than_it(tmp_path: Path) -> None:
    """``read.*`` and ``io.local.read_*`` read at most ``max_bytes`` (16 MiB by default): past
    it, ``BoundExceeded`` naming it; a file with no end is read no further than the bound."""
    path = tmp_path / "big.txt"
    path.write_text("v" * 2000)
    for read in (cs.read.text, cs.read.bytes, cs.io.local.read_text, cs.io.local.read_bytes):
        error = _failure(read(str(path), max_bytes=1000))
        assert isinstance(error, BoundExceeded)
        assert "max_bytes" in str(error)
        assert "1,000" in str(error)
    assert cs.run(cs.read.text(str(path), max_bytes=2000)) == "v" * 2000
    assert cs.run(cs.read.bytes(str(path))) == b"v" * 2000
    endless = _failure(cs.read.bytes("/dev/zero", max_bytes=1 << 20))  # never ends: bounded
    assert isinstance(endless, BoundExceeded)
    (tmp_path / "lines.txt").write_bytes(b"a\r\nb\n")
    assert cs.run(cs.read.text(str(tmp_path / "lines.txt"))) == "a\nb\n"  # as open() reads


# --- item 4: paths and code from params ---


def test_a_read_path_from_a_param_needs_a_root_and_stays_under_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "ok.txt").write_text("fine")
    (tmp_path / "secret.txt").write_text("SECRET")
    with pytest.raises(PathRefused, match="root"):
        cs.read.text(cs.Param("name"))  # no root named: refused as the graph is built
    with pytest.raises(PathRefused, match="root"):
        cs.read.text(cs.format("{}/x", cs.Param("name")))  # from a param, however far up
    read = cs.read.text(cs.Param("name"), root=str(data))
    assert cs.run(read, params={"name": "ok.txt"}) == "fine"
    for hostile in ("../secret.txt", str(tmp_path / "secret.txt")):
        error = _failure(read, name=hostile)
        assert isinstance(error, PathRefused)
        assert "SECRET" not in str(error)
    (data / "out").symlink_to(tmp_path)
    assert isinstance(_failure(read, name="out/secret.txt"), PathRefused)


def test_a_root_or_a_bound_from_a_param_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PathRefused, match="root="):
        cs.read.text("x.txt", root=cs.Param("root"))
    with pytest.raises(PathRefused, match="max_length="):
        cs.format("{}", 1, max_length=cs.Param("n"))
    with pytest.raises(PathRefused, match="to_file="):
        cs.http.get("http://127.0.0.1:9/", to_file=cs.Param("f"))
    with pytest.raises(PathRefused, match="max_bytes="):
        cs.read.bytes("x.bin", max_bytes=cs.Param("n"))
    with pytest.raises(PathRefused, match="max_bytes="):
        cs.io.s3.read_text("bucket", "key", max_bytes=cs.Param("n"))


def test_a_write_path_from_a_param_stays_under_its_root(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    write = cs.write.text(cs.Param("name"), "hello", root=str(out))
    cs.run(write, params={"name": "a.txt"})
    assert (out / "a.txt").read_text() == "hello"
    assert isinstance(_failure(write, name="../escaped.txt"), PathRefused)
    assert not (tmp_path / "escaped.txt").exists()


def test_paths_written_in_code_work_as_before(tmp_path: Path) -> None:
    path = tmp_path / "plain.txt"
    written = cs.write.text(str(path), "plain")
    assert cs.run(cs.read.text(cs.format("{}", str(path), written))) == "plain"


def test_a_subflow_path_from_a_param_needs_a_root(tmp_path: Path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "ok.py").write_text("import cascade.runtime as cs\ntarget = cs.format('{}', 'in')\n")
    (tmp_path / "evil.py").write_text("raise SystemExit('ran code outside its root')\n")
    with pytest.raises(PathRefused, match="root"):
        cs.subflow(cs.Param("flow"), "target")
    flow = cs.subflow(cs.Param("flow"), "target", root=str(flows))
    assert cs.run(flow, params={"flow": "ok.py"}) == "in"
    assert isinstance(_failure(flow, flow="../evil.py"), PathRefused)


def test_a_kept_result_of_shared_values_is_refused_before_it_is_encoded(tmp_path: Path) -> None:
    """A value of a few shared lists (what YAML aliases make) that stands for millions of
    items is refused by the results store's bound before it is encoded whole."""
    path = tmp_path / "aliases.yml"
    path.write_text(_aliases(6))  # 9**7 values: about 10 MB encoded
    value = cs.run(cs.load_yaml(str(path), max_nodes=None))
    store = cs.ResultStore(str(tmp_path / "results"), max_bytes=1_000_000)
    data, why = store.encode(value)
    assert data is None
    assert "before encoding" in why
    assert store.encode({"small": [1, 2, 3]})[0] is not None
