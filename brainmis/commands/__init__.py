"""The code behind each ``brainmis`` subcommand, one module per command.

``brainmis <name>`` runs ``brainmis.commands.<name with - as _>.main(argv)`` (``fit``,
``validate`` and ``test`` run the LightningCLI of ``brainmis.commands.fit``). A command module
parses its arguments, checks its inputs and calls the library code of the rooms (``data``,
``models``, ``evaluation``, ``analysis``, ``launch``); nothing outside ``commands`` imports it.
"""
