// CloudFront Function (cloudfront-js-2.0), viewer-response: security headers on
// every response CloudFront sends (hits and misses; not on errors, for which
// viewer-response does not run).
const HEADERS = {
    'strict-transport-security': 'max-age=63072000; includeSubDomains; preload',
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'same-origin',
    'content-security-policy': "default-src 'self'",
};

function handler(event) {
    const response = event.response;
    for (const name of Object.keys(HEADERS)) {
        response.headers[name] = { value: HEADERS[name] };
    }
    return response;
}
