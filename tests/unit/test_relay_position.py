"""Where the relay resumes: a small file beside the store, read from the old table once."""

import sqlite3

from services.runtime.relay_position import RelayPosition


def test_a_new_position_is_zero_and_survives_reopening(tmp_path):
    path = str(tmp_path / "invitation.sqlite")
    position = RelayPosition(path, "invitation")
    assert position.get() == 0
    position.set(41)
    position.set(2**40 + 7)
    position.close()
    again = RelayPosition(path, "invitation")
    assert again.get() == 2**40 + 7
    again.close()


def test_positions_of_different_relays_are_kept_apart(tmp_path):
    path = str(tmp_path / "room.sqlite")
    first, second = RelayPosition(path, "room"), RelayPosition(path, "other")
    first.set(5)
    second.set(9)
    assert (first.get(), second.get()) == (5, 9)
    first.close()
    second.close()


def test_a_store_from_before_the_file_resumes_from_its_table(tmp_path):
    path = str(tmp_path / "device.sqlite")
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE ringlog_relay (name TEXT PRIMARY KEY, position INTEGER NOT NULL)")
    db.execute("INSERT INTO ringlog_relay VALUES ('device', 1234)")
    db.commit()
    db.close()
    position = RelayPosition(path, "device")
    assert position.get() == 1234
    position.set(1300)
    position.close()
    assert RelayPosition(path, "device").get() == 1300  # the file wins from now on
