package t
import rego.v1
s contains x if some x in [1, 2]
o[k] := v if some k, v in {"a": 1}
f(x) := y if { y := x * 2 } else := 0
c := {k: v | some k, v in o}
e if every x in s { x > 0 }
w := x if { x := 1 with input as 2 }
