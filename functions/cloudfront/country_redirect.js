// CloudFront Function (cloudfront-js-1.0), viewer-request: send viewers in
// Germany and Austria to the German site, in the style of AWS's published
// examples (a handler, and test event objects in ./test-objects).
//
// CloudFront-Viewer-Country is added by CloudFront when a cache or origin
// request policy asks for it; locally, send it yourself:
//   curl -i -H 'CloudFront-Viewer-Country: DE' http://127.0.0.1:8080/shop
var GERMAN = { DE: true, AT: true };

function handler(event) {
    var request = event.request;
    var country = request.headers['cloudfront-viewer-country'];
    if (country && GERMAN[country.value] && request.uri.indexOf('/de/') !== 0) {
        return {
            statusCode: 302,
            statusDescription: 'Found',
            headers: {
                location: { value: '/de' + request.uri },
                'cache-control': { value: 'max-age=300' },
            },
        };
    }
    return request;
}
