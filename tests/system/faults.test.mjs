// The fault tests on one Redis server.
import {faultTests} from './faults.mjs';

faultTests({shards: 1});
