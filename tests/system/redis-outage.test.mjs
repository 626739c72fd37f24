// The outage tests with one Redis, killed and restarted empty.
import {outageTests} from './outage.mjs';

outageTests({sentinel: false});
