"""A Sanic worker forked from the process that made the socket.io manager takes its own identity
on the rooms channel (bot/channels/shared_rooms.py): with one identity for all workers, each
dropped the others' messages as its own and agents' lines never reached customers on another."""

from __future__ import annotations

import os

from bot.channels.shared_rooms import SharedRooms


def test_a_forked_worker_takes_its_own_identity_and_the_parent_keeps_its_own(redis_url):
    manager = SharedRooms(redis_url, channel="helder:socketio:test")
    parent_id, parent_redis = manager.host_id, manager.redis
    child = os.fork()
    if child == 0:  # the worker
        manager._own_process()
        own_id, own_redis = manager.host_id, manager.redis
        manager._own_process()  # once per process: the second call changes nothing
        kept = manager.host_id == own_id and manager.redis is own_redis
        os._exit(0 if own_id != parent_id and own_redis is not parent_redis and kept else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the forked worker kept the parent's identity"
    manager._own_process()
    assert manager.host_id == parent_id and manager.redis is parent_redis
