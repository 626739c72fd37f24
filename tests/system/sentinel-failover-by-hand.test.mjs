// The outage tests with Redis under three sentinels: SENTINEL FAILOVER, the
// old master stays up and every process follows the sentinels' word.
import {outageTests} from './outage.mjs';

outageTests({sentinel: true, byHand: true});
