// Shlink's own JS SDK (@shlinkio/shlink-js-sdk, pinned in package-lock.json) against encurta,
// unchanged: node sdk_check.mjs BASE_URL API_KEY. Prints one JSON object of what came back;
// tests/test_shlink_client.py runs it and asserts on it and on encurta's own API.
import { ShlinkApiClient } from "@shlinkio/shlink-js-sdk";
import { FetchHttpClient } from "@shlinkio/shlink-js-sdk/fetch";

const [baseUrl, apiKey] = process.argv.slice(2);
const CHROME =
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
const client = new ShlinkApiClient(new FetchHttpClient(), { baseUrl, apiKey });

// The SDK throws Shlink's problem details as they came: keep them as results.
const failure = async (promise) => {
  try {
    return { resolved: await promise };
  } catch (error) {
    return { rejected: error };
  }
};

const until = async (probe, done, seconds) => {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const value = await probe();
    if (done(value) || Date.now() > deadline) return value;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
};

const out = {};
const validUntil = new Date(Date.now() + 30 * 86400 * 1000).toISOString();
out.health = await client.health();
out.created = await client.createShortUrl({
  longUrl: "https://example.com/guide",
  customSlug: "sdk-guide",
  title: "The guide",
  tags: ["docs", "sdk"],
  validUntil,
  maxVisits: 100,
});
out.other = await client.createShortUrl({ longUrl: "https://example.com/blog", tags: ["blog"] });
out.found = await client.createShortUrl({ longUrl: "https://example.com/guide", findIfExists: true });
out.taken = await failure(
  client.createShortUrl({ longUrl: "https://example.com/else", customSlug: "sdk-guide" }),
);
out.unsafe = await failure(client.createShortUrl({ longUrl: "javascript:alert(1)" }));
out.firstPage = await client.listShortUrls({ itemsPerPage: 1, orderBy: { field: "shortCode", dir: "ASC" } });
out.searched = await client.listShortUrls({ searchTerm: "guide" });
out.tagged = await client.listShortUrls({ tags: ["blog"] });
out.allTags = await client.listShortUrls({ tags: ["docs", "blog"], tagsMode: "all" });
out.got = await client.getShortUrl({ shortCode: "sdk-guide" });
out.edited = await client.updateShortUrl(
  { shortCode: "sdk-guide" },
  { title: "The new guide", tags: ["docs"], maxVisits: null },
);

// A person's visit, then its visit as analytics tells it (through the shortener's 307).
const followed = await fetch(out.created.shortUrl, {
  redirect: "manual",
  headers: { "User-Agent": CHROME, Referer: "https://news.example/" },
});
out.followed = { status: followed.status, location: followed.headers.get("location") };
out.visits = await until(
  () => client.getShortUrlVisits({ shortCode: "sdk-guide" }),
  (visits) => visits.data.length > 0,
  60,
);
out.overview = await client.getVisitsOverview();
out.orphans = await client.getOrphanVisits();
out.tags = await client.listTags();
out.tagsStats = await client.tagsStats();
await client.deleteShortUrl({ shortCode: out.other.shortCode });
out.gone = await failure(client.getShortUrl({ shortCode: out.other.shortCode }));
out.missingVisits = await failure(client.getShortUrlVisits({ shortCode: "nothing-here" }));
const stranger = new ShlinkApiClient(new FetchHttpClient(), { baseUrl, apiKey: "enc_nope" });
out.badKey = await failure(stranger.listShortUrls());
console.log(JSON.stringify(out));
