"""The public vocabulary of ringlog: ids, subjects, enums, events and commands."""
