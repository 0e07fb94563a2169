// JSON round trips of a 2,000-record document, 10 times
const doc = [];
for (let i = 0; i < 2000; i++) doc.push({ id: i, name: "item " + i, tags: ["a", "b", "c"], price: i * 1.25, ok: i % 2 === 0 });
let total = 0;
for (let k = 0; k < 10; k++) {
  const back = JSON.parse(JSON.stringify(doc));
  total += back[1999].price + back.length;
}
if (total !== 10 * (1999 * 1.25 + 2000)) throw new Error("json " + total);
