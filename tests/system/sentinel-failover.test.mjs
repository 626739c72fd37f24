// The outage tests with Redis under three sentinels: the master is killed.
import {outageTests} from './outage.mjs';

outageTests({sentinel: true});
