// CloudFront Function (cloudfront-js-2.0), viewer-request: one cache key per page.
//
// Query parameters are lowercased and sorted, tracking parameters (utm_*,
// fbclid, gclid) are dropped, and Accept-Language is cut to its first language,
// so that "?B=2&a=1&utm_source=x" and "?a=1&b=2" are the same object.
const TRACKING = /^(utm_.*|fbclid|gclid)$/;

function handler(event) {
    const request = event.request;
    const query = {};
    Object.keys(request.querystring).forEach((name) => {
        const lower = name.toLowerCase();
        if (!TRACKING.test(lower)) {
            query[lower] = request.querystring[name];
        }
    });
    const sorted = {};
    Object.keys(query).sort().forEach((name) => {
        sorted[name] = query[name];
    });
    request.querystring = sorted;
    const language = request.headers['accept-language'];
    if (language) {
        request.headers['accept-language'] = { value: language.value.split(',')[0].trim() };
    }
    return request;
}
