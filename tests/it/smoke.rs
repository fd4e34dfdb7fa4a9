use crate::support::*;

#[tokio::test]
async fn proxies_to_an_upstream() {
    let up = Upstream::start("a").await;
    let gw = Gateway::start(&one_upstream(up.addr, "", "")).await;
    let (status, v) = get_json(&client(), &gw.url("/x?y=1")).await;
    assert_eq!(status, 200, "{}", gw.log());
    assert_eq!(v["upstream"], "a");
    assert_eq!(v["path"], "/x");
    assert_eq!(v["query"], "y=1");
}
