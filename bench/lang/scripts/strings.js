// string building: formatting, concatenation through a buffer, searching
const parts = [];
for (let i = 1; i <= 200000; i++) parts.push(i + ":" + "x".repeat(i % 7) + ";");
const s = parts.join("");
let n = 0, at = 0;
while ((at = s.indexOf("xxxxxx;", at)) >= 0) { n++; at += 7; }
if (s.length !== 2088892 || n !== 28571) throw new Error(s.length + " " + n);
