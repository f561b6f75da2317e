from donghaeng.cli.app import app

app(prog_name="donghaeng")
