// The fault tests with the channel layer sharded over two Redis servers.
import {faultTests} from './faults.mjs';

faultTests({shards: 2});
