// many small objects: build, read, update by string key, drop
const rows = []; let total = 0;
for (let i = 1; i <= 100000; i++) rows.push({ id: i, name: "n" + i, v: i * 0.5 });
for (let i = 0; i < rows.length; i++) total += rows[i].v;
const byname = {};
for (let i = 0; i < 50000; i++) byname[rows[i].name] = rows[i];
for (let i = 1; i <= 50000; i++) byname["n" + i].v += 1;
if (total !== 2500025000 || byname.n7.v !== 4.5) throw new Error("objects");
