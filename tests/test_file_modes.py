"""The data dir is private: a node started over an old data dir that a loose umask or an older
version left readable by other users makes it 0700 and its secrets 0600; a backup is private too."""

import os
import stat

from ternlib import Tern


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_loose_old_data_dir_is_tightened_at_start(tmp_path):
    t = Tern(tmp_path / "node")
    t.start()
    t.stop()
    data = t.data_dir
    os.chmod(data, 0o755)
    secrets = [data / "admin.token", data / "tls-key.pem"]
    for path in secrets:
        assert path.exists(), path
        os.chmod(path, 0o644)
    t.start()
    try:
        assert mode(data) == 0o700
        for path in secrets:
            assert mode(path) == 0o600, path
        t.cli("domain", "add", "modes.example")
        backup = tmp_path / "backup"
        t.cli("backup", "create", str(backup))
        assert mode(backup) == 0o700
    finally:
        t.kill()


def test_a_new_data_dir_is_private_whatever_the_umask(tmp_path):
    old = os.umask(0o000)
    try:
        t = Tern(tmp_path / "fresh")
        os.rmdir(t.data_dir)            # let the node create it
        t.start()
    finally:
        os.umask(old)
    try:
        assert mode(t.data_dir) == 0o700
        assert mode(t.data_dir / "admin.token") == 0o600
    finally:
        t.kill()
