/** Every subcommand, registered explicitly (yargs' commandDir only loads .js). */
import type { CommandModule } from 'yargs';
import { benchCommand } from './bench.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<object, any>[] = [benchCommand];
