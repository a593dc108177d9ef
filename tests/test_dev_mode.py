"""`tern serve --dev` as the README runs it: no config file, the dev ports, data in --data."""

import imaplib
import signal
import smtplib
import socket
import subprocess
import urllib.request

import pytest

from ternlib import PASSWORD, message, tern_bin, wait_until

# A loopback address of its own, so the fixed dev ports do not collide with a developer's node.
HOST = "127.0.0.2"
DEV_PORTS = {"smtp": 2525, "submission": 2587, "submissions": 2465, "imap": 1143,
             "imaps": 1993, "pop3": 1110, "pop3s": 1995, "admin": 8080}


def port_free(port):
    with socket.socket() as s:
        # Like the server's listener: a port in TIME_WAIT from an earlier run is free.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
            return True
        except OSError:
            return False


def test_dev_mode_serves_every_port(tmp_path):
    if not all(port_free(p) for p in DEV_PORTS.values()):
        pytest.skip(f"dev ports on {HOST} are in use")
    data = tmp_path / "tern-data"
    log = open(tmp_path / "dev.log", "wb")
    proc = subprocess.Popen([tern_bin(), "serve", "--dev", "--bind", HOST, "--data", str(data)],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        admin = f"http://{HOST}:8080"

        def ready():
            assert proc.poll() is None, "tern exited"
            with urllib.request.urlopen(admin + "/health/ready", timeout=2) as r:
                return r.status == 200

        wait_until(ready, timeout=60, what="tern --dev to become ready")
        for name in ("tls-cert.pem", "tls-key.pem", "admin.token"):
            assert (data / name).exists(), name
        assert oct((data / "admin.token").stat().st_mode & 0o777) == "0o600"
        for name, port in DEV_PORTS.items():
            socket.create_connection((HOST, port), timeout=5).close()
        cli = [tern_bin(), "--admin", admin, "--data", str(data)]
        subprocess.run(cli + ["domain", "add", "example.test"], check=True, capture_output=True)
        subprocess.run(cli + ["account", "add", "bob@example.test", "--password", PASSWORD],
                       check=True, capture_output=True)
        s = smtplib.SMTP(HOST, DEV_PORTS["smtp"], timeout=30)
        s.sendmail("x@elsewhere.test", ["bob@example.test"], message("dev mode", to="bob@example.test"))
        s.quit()
        imap = imaplib.IMAP4(HOST, DEV_PORTS["imap"])
        imap.login("bob@example.test", PASSWORD)
        assert imap.select("INBOX")[1][0] == b"1"
        imap.logout()
        with urllib.request.urlopen(admin + "/metrics", timeout=5) as r:
            metrics = r.read().decode()
        assert "tern_wal_syncs_total" in metrics and "tern_connections_open" in metrics
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()
