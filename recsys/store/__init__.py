"""The relational store: SQLAlchemy Core tables, migrations and query functions per aggregate."""
