"""Cassettes: a real run recorded as scripted-model steps, replayed offline.

``proxy.RecordingProxy`` sits between Codex and the real provider and logs each exchange;
``model.build_cassette`` turns the log into a ``Cassette`` (readable YAML, per task, in order);
``model.replay_mission`` gives a mission the cassette's steps to play on the scripted model.
See docs/record-replay.md.
"""
