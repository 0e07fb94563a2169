-- utf8 library
print(utf8.char(72, 228, 8364, 128512), utf8.char())
print(utf8.charpattern == "[\0-\x7F\xC2-\xFD][\x80-\xBF]*")
local s = "häll€"
print(#s, utf8.len(s), utf8.len("\xff"), utf8.len(s, 3))
print(utf8.codepoint(s, 1, -1))
print(utf8.offset(s, 3), utf8.offset(s, -1), utf8.offset(s, 6), utf8.offset(s, 7))
for p, c in utf8.codes("aé€") do io.write(p, "=", c, " ") end
print()
print(pcall(utf8.codepoint, "\xff"))
print(pcall(function() for _ in utf8.codes("a\xffb") do end end))
for c in s:gmatch(utf8.charpattern) do io.write("[", c, "]") end
print()
print(utf8.char(0x7FFFFFFF):byte(1, -1))
print(utf8.len("\xF4\x90\x80\x80"), utf8.len("\xF4\x90\x80\x80", 1, -1, true))
