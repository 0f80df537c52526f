/** Every subcommand, registered explicitly (yargs' commandDir only loads .js). */
import type { CommandModule } from 'yargs';
import { benchCommand } from './bench.js';
import { serveCommand } from './serve.js';
import { ctlCommand } from './ctl.js';
import { bridgeCommand } from './bridge.js';
import { pktGenCommand } from './pkt-gen.js';
import { captureCommand } from './capture.js';
import { vmCommand } from './vm.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<object, any>[] = [serveCommand, pktGenCommand, ctlCommand, captureCommand, bridgeCommand, benchCommand, vmCommand];
