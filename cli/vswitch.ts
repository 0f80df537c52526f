#!/usr/bin/env node
/**
 * The vswitch command. One module per subcommand under cli/commands/, each a yargs
 * CommandModule; they import the package's entry points only ('vswitch', 'vswitch/control',
 * 'vswitch/pktgen', ...), never files under src/. Exit codes: 0 ok, 1 failure with a one-line
 * reason on stderr (2 for usage errors, from yargs).
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { commands } from './commands/index.js';

const argv = hideBin(process.argv);
const cli = yargs(argv)
  .scriptName('vswitch')
  .usage('$0 <command> [options]\n\nA virtual Ethernet switch in TypeScript, modelled on netmap\'s VALE.')
  .strict()
  .demandCommand(1, 'Give a command; see the list above (vswitch <command> --help for its options).')
  .recommendCommands()
  .wrap(Math.min(110, process.stdout.columns || 100))
  .epilogue('Ports are named vale<bridge>:<port> (e.g. vale0:a) or vale<name> on the default bridge.')
  .fail((msg, err) => {
    // yargs reports some usage errors (a flag missing its value) as a YError: those are usage too.
    if (err && err.name !== 'YError') {
      process.stderr.write(`vswitch: ${err.message}\n`);
      process.exit(1);
    }
    process.stderr.write(`vswitch: ${msg ?? err?.message} (run "vswitch --help" or "vswitch <command> --help")\n`);
    process.exit(2);
  });
for (const c of commands) cli.command(c);
await cli.help().alias('h', 'help').version().parseAsync();
