"""Change feed over HTTP (GET /watch?...): placeholder, no tests yet.

The lead has not fixed this interface yet. Once it is fixed, this module will
test, against a real `filament up`:

* a watcher opened before a change receives one event per create, update and
  delete, in commit order, each carrying the object type, uuid, fq_name and
  the kind of change;
* filtering by object type (and by fq_name prefix / parent, if offered);
* resuming from a given revision/position after a disconnect without losing or
  repeating events, including across a server restart;
* refused writes (bad input, 409s) produce no events;
* the stream stays open and well-formed while idle and ends cleanly on
  SIGTERM of the server.
"""
