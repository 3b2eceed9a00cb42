package t
n := numbers.range(1, 1000)
p := count([1 | n[_]; n[_]; n[_]])
