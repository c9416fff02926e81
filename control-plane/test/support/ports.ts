/** Free TCP ports and waiting for a listener, for tests that start servers of their own (the bench's helpers). */
import { freePort, waitForPort } from '../../../bench/lib/processes.js';

export const freePortForTest = freePort;
export const waitForPortForTest = waitForPort;
