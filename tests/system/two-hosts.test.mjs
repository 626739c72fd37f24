// The fault tests on two simulated hosts (tests/lib/hosts.mjs): two workers
// and two interfaces, a worker and an interface on each host, in mount and
// network namespaces of their own, with no file in common; PostgreSQL and
// Redis on this one, reached over each host's link.
import {faultTests} from './faults.mjs';

faultTests({shards: 1, db: 'postgresql', hosts: 2, workers: 2});
