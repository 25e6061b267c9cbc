package corral.conflict

import rego.v1

limit := 1 if count(input.jobs) > 0

limit := 2 if count(input.jobs) > 0

deny contains "never reached" if limit > 5
