// The fault tests on PostgreSQL: three workers share one database server,
// and a room's order across them rests on its locks.
import {faultTests} from './faults.mjs';

faultTests({shards: 1, db: 'postgresql'});
