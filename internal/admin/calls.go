package admin

import (
	"net/url"

	"github.com/oneport/oneport/httproute"
)

// The calls `oneport route` and `oneport upstream` make. Each returns the
// routes (or upstreams) as they are after the change; persist also writes
// the change to the config file.

func persistQuery(persist bool) string {
	if persist {
		return "?persist=true"
	}
	return ""
}

// Routes is GET /routes.
func (c *Client) Routes() (routes []Route, err error) {
	return routes, c.Call("GET", "/routes", nil, &routes)
}

// AddRoute adds r.
func (c *Client) AddRoute(r Route, persist bool) (routes []Route, err error) {
	return routes, c.Call("POST", "/routes"+persistQuery(persist), r, &routes)
}

// SetRoute replaces the route called name by spec, keeping its name.
func (c *Client) SetRoute(name, spec string, persist bool) (routes []Route, err error) {
	return routes, c.Call("PUT", "/routes/"+url.PathEscape(name)+persistQuery(persist), Route{Spec: spec}, &routes)
}

// RemoveRoute removes the route called name.
func (c *Client) RemoveRoute(name string, persist bool) (routes []Route, err error) {
	return routes, c.Call("DELETE", "/routes/"+url.PathEscape(name)+persistQuery(persist), nil, &routes)
}

// TagRoute sets the tag of the route called name.
func (c *Client) TagRoute(name, tag string, persist bool) (routes []Route, err error) {
	return routes, c.Call("POST", "/tag/"+url.PathEscape(name)+persistQuery(persist), map[string]*string{"tag": &tag}, &routes)
}

// UpstreamOp is "drain" or "enable" on the upstream at addr.
func (c *Client) UpstreamOp(addr, op string) (ups []httproute.UpstreamStatus, err error) {
	return ups, c.Call("POST", "/upstreams/"+url.PathEscape(addr)+"/"+op, nil, &ups)
}

// AddUpstream adds u to the pool of route.
func (c *Client) AddUpstream(route string, u Upstream, persist bool) (routes []Route, err error) {
	q := url.Values{"route": {route}}
	if persist {
		q.Set("persist", "true")
	}
	return routes, c.Call("POST", "/upstreams?"+q.Encode(), u, &routes)
}

// RemoveUpstream removes the upstream at addr from the pool of route.
func (c *Client) RemoveUpstream(route, addr string, persist bool) (routes []Route, err error) {
	q := url.Values{"route": {route}}
	if persist {
		q.Set("persist", "true")
	}
	return routes, c.Call("DELETE", "/upstreams/"+url.PathEscape(addr)+"?"+q.Encode(), nil, &routes)
}
