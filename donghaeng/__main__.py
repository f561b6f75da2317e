from .cli import app

app(prog_name="donghaeng")
