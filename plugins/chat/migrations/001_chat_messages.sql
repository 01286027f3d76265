-- What chat/say stores and chat/history reads (SQLite: id is the rowid).
CREATE TABLE chat_messages (
        id INTEGER PRIMARY KEY,
        room TEXT NOT NULL,
        client_id TEXT NOT NULL,
        user_id TEXT,
        text TEXT NOT NULL,
        sent_at INTEGER NOT NULL
);
CREATE INDEX chat_messages_room ON chat_messages (room, id);
