package corral.debug

import rego.v1

warn contains {"job": name, "msg": "looked at"} if {
	some name, _ in input.jobs
	print("checking", name)
}
