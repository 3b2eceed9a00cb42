package t
p := regex.match("(a+)+$", concat("", [x | some _ in numbers.range(1, 3000); x := "a"]))
q := glob.match("*.*.*", null, "a.b.c")
