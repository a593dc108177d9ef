"""The harness itself: HAProxy config rendering, node configs, and the whole lifecycle (up, faults,
status, down) against cluster/fake_tern.py, a stand-in that needs no build. The last test runs the
same lifecycle against the real `tern` once it has `tern cluster` (skipped before).

    python3 -m pytest -q cluster/
"""

import imaplib
import os
import shutil
import smtplib
import socket
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import ternlocal  # noqa: E402
from ternlocal import Cluster, ClusterError  # noqa: E402

FAKE = str(HERE / "fake_tern.py")
HAPROXY = shutil.which("haproxy")


def wait_for(condition, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def haproxy_check(cfg: Path, n: int) -> subprocess.CompletedProcess:
    env = dict(os.environ, TERN_PROXY_SOURCE="127.0.0.254",
               **{f"TERN_NODE{i}_HOST": f"10.0.0.{i}" for i in range(1, n + 1)})
    return subprocess.run([HAPROXY, "-c", "-f", str(cfg)], env=env, capture_output=True, text=True)


# --- rendering ----------------------------------------------------------------------------------

@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")
def test_the_deploy_haproxy_cfg_is_valid_as_it_is():
    done = haproxy_check(ternlocal.HAPROXY_TEMPLATE, 3)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")
@pytest.mark.parametrize("n", [1, 2, 5, 12])
def test_rendered_for_n_nodes(tmp_path, n):
    text = ternlocal.render_haproxy(ternlocal.HAPROXY_TEMPLATE.read_text(), n)
    servers = [line.split()[1] for line in text.splitlines() if line.strip().startswith("server ")]
    assert servers == [f"node{i}" for i in range(1, n + 1)]
    assert f'"${{TERN_NODE{n}_HOST}}"' in text
    assert "send-proxy-v2" in text
    (tmp_path / "h.cfg").write_text(text)
    done = haproxy_check(tmp_path / "h.cfg", n)
    assert done.returncode == 0, done.stdout + done.stderr


def test_render_without_proxy_protocol_and_without_markers():
    template = ternlocal.HAPROXY_TEMPLATE.read_text()
    assert "send-proxy-v2" not in ternlocal.render_haproxy(template, 2, proxy_protocol=False)
    with pytest.raises(ClusterError, match="BEGIN tern-nodes"):
        ternlocal.render_haproxy(template.replace("# BEGIN tern-nodes", "#"), 2)


def test_node_config_is_the_documented_toml(tmp_path):
    c = Cluster(tmp_path)
    c.info = {"n": 3, "base_port": 21000}
    config = tomllib.loads(c._node_config(2, proxy_protocol=True))
    assert config["server"]["data_dir"] == str(tmp_path / "node2" / "data")
    assert config["listeners"]["smtp"] == "127.0.0.3:21000"
    assert config["listeners"]["pop3s"] == "127.0.0.3:21006"
    assert config["listeners"]["admin"] == "127.0.0.3:21007"
    assert config["listeners"]["proxy_protocol_from"] == ["127.0.0.254/32"]
    assert config["cluster"] == {
        "node_id": 2, "listen": "127.0.0.3:21008", "advertise": "127.0.0.3:21009",
        "seeds": ["127.0.0.2:21009"], "ca": str(tmp_path / "certs" / "ca.pem"),
        "cert": str(tmp_path / "certs" / "node-2.pem"),
        "key": str(tmp_path / "certs" / "node-2.key")}
    plain = tomllib.loads(c._node_config(1, proxy_protocol=False))
    assert "proxy_protocol_from" not in plain["listeners"]


def test_free_port_ranges_and_commands_without_a_cluster(tmp_path):
    base = ternlocal.pick_base_port(4)
    assert 20000 <= base and base + 9 < 32000
    c = Cluster(tmp_path / "none")
    with pytest.raises(ClusterError, match="no cluster"):
        c.kill(1)
    c.down()           # nothing to stop: still fine
    c.down(clean=True)


def test_a_foreign_directory_is_never_removed(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(ClusterError, match="not a tern-local dir"):
        Cluster(tmp_path, bin=FAKE).up(1)
    assert (tmp_path / "precious.txt").read_text() == "keep me"


# --- the lifecycle, against the fake tern -------------------------------------------------------

@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")
def test_lifecycle_with_the_fake_tern(tmp_path):
    d = tmp_path / "cluster"
    with Cluster(d, bin=FAKE) as c:
        c.up(3, partitions=4)
        with pytest.raises(ClusterError, match="already up"):
            Cluster(d, bin=FAKE).up(3)

        # Through HAProxy, with the client address carried by PROXY v2.
        with smtplib.SMTP(timeout=10) as smtp:
            code, banner = smtp.connect(*c.ports["smtp"])
            assert b"fake (127.0.0.1)" in banner      # not 127.0.0.254: the PROXY header's address
            smtp.sendmail("a@remote.test", ["bob@example.test"], b"Subject: hi\r\n\r\nhello\r\n")
        with smtplib.SMTP(timeout=10) as smtp:           # directly to node 2, no PROXY header
            assert smtp.connect(*c.node_addr(2, "smtp"))[1] == b"node2 fake (127.0.0.1)"
        with socket.create_connection(c.ports["imap"], timeout=10) as imap:
            assert imap.makefile("rb").readline().startswith(b"* OK node")

        info = ternlocal.read_json(d / "cluster.json")
        assert info["ports"]["smtp"] == list(c.ports["smtp"])
        assert [n["pid"] for n in info["nodes"]] == [n["pid"] for n in c.status()["nodes"]]
        assert c.admin_get(1, "/v1/cluster/status")["node"] == 1
        assert c.wait_converged(5) == {g: "00" for g in range(5)}
        assert "127.0.0.4" in c.cli(3, "cluster", "status")

        c.kill(2)
        s = c.status()
        assert [n["state"] for n in s["nodes"]] == ["running", "killed", "running"]
        with pytest.raises(ClusterError, match="not running"):
            c.pause(2)
        c.restart(2)
        c.wait_all_ready(20)
        assert c.status()["haproxy_servers"] == {"node1": "UP", "node2": "UP", "node3": "UP"}

        c.pause(3)
        assert c.status()["nodes"][2]["state"] == "paused"
        wait_for(lambda: c.status(cluster=False)["haproxy_servers"]["node3"].startswith("DOWN"),
                 what="HAProxy marks the paused node down")
        c.resume(3)
        c.wait_ready(3, 10)

        c.partition(1)
        s = c.status(cluster=False)
        assert [n["partitioned"] for n in s["nodes"]] == [True, False, False]
        wait_for(lambda: not c.status(cluster=False)["nodes"][0]["ready"],
                 what="the partitioned node is not ready")
        with smtplib.SMTP(*c.node_addr(1, "smtp"), timeout=10) as smtp:   # client port still up
            assert smtp.noop()[0] == 250
        c.heal()
        c.wait_all_ready(20)

        c.restart(1)      # a running node: SIGTERM, then start again
        c.wait_all_ready(20)
        text = c.status_text()
        assert "tern cluster status (from node 1)" in text and "smtp 127.0.0.1:" in text
    # The context manager took it down; the files stay.
    s = Cluster(d).status()
    assert [n["state"] for n in s["nodes"]] == ["stopped"] * 3
    assert (d / "node1" / "log").exists() and not (d / "state").exists()

    # A second `up` in the same dir starts afresh; down --clean removes the dir.
    c = Cluster(d, bin=FAKE)
    c.up(1, partitions=2)
    assert c.status()["nodes"][0]["ready"]
    c.down(clean=True)
    assert not d.exists()


@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")
def test_down_succeeds_when_half_the_processes_are_gone(tmp_path):
    c = Cluster(tmp_path, bin=FAKE)
    c.up(2, partitions=1)
    state = c._state()
    c.kill(1)
    os.kill(state["haproxy"]["pid"], 9)
    c.pause(2)
    c.down()
    assert all(ternlocal.proc_state(p) is None for _, p in c._named_procs(state))


@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")
def test_wipe_and_remove_dead_free_the_id_and_keep_the_spare(tmp_path, monkeypatch):
    with Cluster(tmp_path / "cluster", bin=FAKE) as c:
        c.up(3, partitions=2, spare=1)
        assert c.spares == [4]
        token = (c.data_dir(2) / "admin.token").read_text()
        c.wipe(2)
        assert c.node_state(2) == "killed" and list(c.data_dir(2).iterdir()) == []
        c.restart(2)                        # a new data dir: the fake makes a new token
        assert (c.data_dir(2) / "admin.token").read_text() != token
        with pytest.raises(ClusterError, match="not a member"):
            c.remove_dead(4)
        calls = []
        monkeypatch.setattr(c, "cli", lambda i, *args, **kw: calls.append((i, args)) or "")
        c.remove_dead(2)                    # the fake has no `remove`: only the harness's part
        assert calls == [(1, ("cluster", "remove", "2", "--dead"))]
        assert c.node_state(2) == "killed" and c.members == [1, 3]
        assert c.spares == [4] and Cluster(c.dir).members == [1, 3]   # saved in cluster.json


@pytest.mark.skipif(HAPROXY is None, reason="haproxy is not installed")
def test_direct_links_start_no_link_proxy_and_refuse_partitions(tmp_path):
    d = tmp_path / "cluster"
    with Cluster(d, bin=FAKE, direct_links=True) as c:
        c.up(2, partitions=2)
        assert c.status(cluster=False)["linkproxy"] == "stopped"
        for i in (1, 2):
            cfg = tomllib.loads((d / f"node{i}" / "node.toml").read_text())["cluster"]
            assert cfg["advertise"] == cfg["listen"] == "%s:%d" % c.node_addr(i, "link")
            assert cfg["seeds"] == ["%s:%d" % c.node_addr(1, "link")]
        # A later invocation on the same dir (the CLI's) knows, from cluster.json.
        with pytest.raises(ClusterError, match="direct links"):
            Cluster(d).partition(2)
        assert c.partitioned() == set()
        with smtplib.SMTP(*c.ports["smtp"], timeout=10) as smtp:
            assert smtp.noop()[0] == 250


# --- the real tern ------------------------------------------------------------------------------

def real_tern_has_cluster() -> bool:
    path = ternlocal.default_bin()
    if not Path(path).exists():
        return False
    return subprocess.run([path, "cluster", "--help"], capture_output=True).returncode == 0


@pytest.mark.skipif(HAPROXY is None or not real_tern_has_cluster(),
                    reason="needs haproxy and a tern with `tern cluster`")
def test_lifecycle_with_the_real_tern(tmp_path):
    with Cluster(tmp_path / "cluster") as c:
        c.up(3, partitions=4)
        c.cli(1, "domain", "add", "example.test")
        c.cli(2, "account", "add", "bob@example.test", "--password", "bob secret")
        with smtplib.SMTP(*c.ports["smtp"], timeout=30) as smtp:
            smtp.sendmail("a@remote.test", ["bob@example.test"],
                          b"Subject: through haproxy\r\n\r\nhello\r\n")
        c.kill(3)
        assert c.status()["nodes"][2]["state"] == "killed"
        with smtplib.SMTP(*c.ports["smtp"], timeout=30) as smtp:   # two of three still serve
            smtp.sendmail("a@remote.test", ["bob@example.test"],
                          b"Subject: with a node down\r\n\r\nhello\r\n")
        c.restart(3)
        c.wait_all_ready()
        c.partition(2)
        wait_for(lambda: not c.status(cluster=False)["nodes"][1]["ready"], timeout=30,
                 what="the partitioned node is not ready")
        c.heal()
        c.wait_all_ready()
        imap = imaplib.IMAP4(*c.ports["imap"], timeout=30)
        imap.login("bob@example.test", "bob secret")
        imap.select("INBOX")
        assert len(imap.search(None, "ALL")[1][0].split()) == 2
        imap.logout()
        digests = c.wait_converged()
        assert len(digests) == 5      # meta + 4 partitions, identical on every replica


def test_haproxy_is_installed_when_missing(tmp_path, monkeypatch):
    calls = []
    stub = tmp_path / "ensure-apt"
    stub.write_text(f"#!/bin/sh\necho \"$@\" >> {tmp_path / 'calls'}\n")
    stub.chmod(0o755)
    monkeypatch.setattr(ternlocal, "ENSURE_APT", stub)
    answers = iter([None, None, "/usr/sbin/haproxy"])
    monkeypatch.setattr(ternlocal.shutil, "which", lambda *a, **k: next(answers, None))
    assert Cluster(tmp_path / "c", log=calls.append)._ensure_haproxy() == "/usr/sbin/haproxy"
    assert (tmp_path / "calls").read_text().split() == ["haproxy"]
    assert "installing" in calls[0]
