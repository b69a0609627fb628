// CloudFront Function (cloudfront-js-1.0), viewer-request: send viewers in
// Germany and Austria to the German site, in the style of AWS's published
// examples (a handler, and test event objects in ./test-objects).
//
// CloudFront adds CloudFront-Viewer-Country to the request before this
// function runs when the behavior's cache or origin request policy lists it
// (configs/javascript.yaml does). Locally, say where the viewer is:
//   curl -i -H 'X-Edgesim-Viewer: country=DE' http://127.0.0.1:8080/shop/cart
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
