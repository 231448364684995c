"""Compressed, encrypted history; key rotation; moving history to another store.

    python examples/encrypted_history.py

Works in a temporary directory; needs the ``crypto`` extra (``cryptography``).
"""

from __future__ import annotations

import os
import tempfile

import sessions


def main() -> None:
    directory = tempfile.mkdtemp()
    old_key, new_key = os.urandom(32), os.urandom(32)

    # Compress, then encrypt, then store: the recommended stack.
    base = sessions.SQLiteSession(os.path.join(directory, "chats.db"))
    store = sessions.with_compression(sessions.with_encryption(base, old_key))
    store.append("user-alice", [
        {"role": "user", "content": "Summarise our Q3 numbers. " * 20},
        {"role": "assistant", "content": "Revenue grew 12% while costs stayed flat. " * 20},
    ])
    print("stored as:", list(base.get("user-alice", limit=1)[0]["envelope"]))

    # Rotation: the new key encrypts, both decrypt; then rewrite under the new key.
    ring = sessions.with_encryption(base, [new_key, old_key])
    print("messages rewritten under the new key:", ring.reencrypt("user-alice"))
    rotated = sessions.with_compression(sessions.with_encryption(base, new_key))
    print("readable with the new key alone:", len(rotated.get("user-alice")), "messages")

    # A wrong key never returns garbage and never deletes anything.
    try:
        sessions.with_encryption(base, os.urandom(32)).clear("user-alice")
    except sessions.DecryptionError as error:
        print("wrong key:", error)
    print("still stored:", base.count("user-alice"), "messages")

    # Move everything to another store, twice: the second run writes nothing.
    target = sessions.connect(f"sqlite:///{directory}/plain-copy.db")
    print(sessions.migrate(rotated, target))
    print(sessions.migrate(rotated, target))
    target.close()
    rotated.close()


if __name__ == "__main__":
    main()
