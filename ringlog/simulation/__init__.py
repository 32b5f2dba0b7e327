"""`ringlog simulate`: a load generator that behaves like call-kit clients.

The pieces, each small and testable on its own:

- `mix`      the outcome mix (`accept=60,decline=10,...`) and the dealer that picks outcomes
- `scripts`  what happens in one call of each outcome, as a pure list of steps
- `pool`     the users, and which of them are in a call now
- `driver`   plays a script: sends commands (timed, retried), waits for live events
- `feed`     the live subscription to the event log, and the read-back of the stream
- `checker`  expected events vs events received: lost, duplicated, unexpected
- `display`  the progress line on stderr and the final report
- `run`      puts them together for one run

`ringlog/simulate.py` is the command line.
"""
