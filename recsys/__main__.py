from recsys.cli import app

app(prog_name="recsys")
